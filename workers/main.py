"""Worker/scheduler entry point: `celery -A workers.main worker` / `celery -A workers.main beat`."""

from api import create_app
from workers import install_periodic_log_filter, register_tasks

flask_app = create_app()
celery = flask_app.extensions["celery"]
register_tasks()
install_periodic_log_filter(celery.conf.beat_schedule)  # an idle worker/scheduler is silent
