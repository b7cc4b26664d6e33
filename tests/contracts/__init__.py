"""Tests of the contract harness (mockbankr.contracts) and of the committed contracts."""
