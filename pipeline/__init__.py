"""The evaluation pipeline's steps (landing validation → dbt → mart validation → publish → report) and the demo runner."""
