"""The backend generator: requirements -> plan -> deterministic layout -> the model's files -> validation
(screener, ruff, Bandit, the project's own tests in the sandbox) -> repair rounds -> the best round."""
