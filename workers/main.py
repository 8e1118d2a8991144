"""Worker/scheduler entry point: `celery -A workers.main worker` / `celery -A workers.main beat`."""

from api import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]

import workers.tasks  # noqa: E402,F401  (register the herald.* tasks on this app)
