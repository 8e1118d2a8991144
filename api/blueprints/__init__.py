"""One Blueprint per service, registered by create_app."""
