"""The module ``celery -A worker.celery_app`` loads. Building it connects to nothing."""

from worker.app import create_celery

app = create_celery()
