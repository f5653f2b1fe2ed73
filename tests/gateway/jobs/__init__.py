"""Tests of the job and schedule endpoints."""
