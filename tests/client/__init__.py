"""Tests of the reference client, ``bankr_client`` (a package, so basenames never clash)."""
