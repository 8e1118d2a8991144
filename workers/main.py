"""Worker/scheduler entry point: `celery -A workers.main worker` / `celery -A workers.main beat`."""

from api import create_app
from workers import register_tasks

flask_app = create_app()
celery = flask_app.extensions["celery"]
register_tasks()
