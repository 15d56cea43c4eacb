"""`python -m dgprofile`."""

from dgprofile.cli import main

if __name__ == "__main__":
    main()
