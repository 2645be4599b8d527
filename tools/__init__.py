"""Developer tools kept outside the package: `python -m tools.bench` is `make bench`."""
