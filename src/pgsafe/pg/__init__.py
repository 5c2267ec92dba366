"""The one place that runs PostgreSQL's programs and opens connections."""
