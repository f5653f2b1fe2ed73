"""Durable writeback and connector jobs, their queue, schedules and dataset triggers."""
