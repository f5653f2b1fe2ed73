"""Tests of the job queue, its runner, retry policy, spool and schedules, without HTTP."""
