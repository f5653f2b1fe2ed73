"""Accounts: a user's stored, encrypted credentials for one data provider."""
