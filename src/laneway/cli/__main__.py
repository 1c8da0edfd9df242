"""``python -m laneway.cli``."""

from laneway.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
