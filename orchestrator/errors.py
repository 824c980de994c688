class ServiceError(Exception):
    """A request a service cannot do. `status_code` is the HTTP answer for it; `message` is safe to show."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
