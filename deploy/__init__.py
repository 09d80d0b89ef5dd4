"""The local scale-out stack (Spark standalone + Thrift, Redis, Airflow on Celery); see deploy/README.md."""
