"""Toy components, one file each, registered the way a built-in registers itself. The test session
imports every module here (tests/conftest.py), so each joins the listings, the error messages and
the contract matrix with no edit anywhere else: the registries' promise, held by tests."""
