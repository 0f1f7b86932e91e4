import sys

from meshnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
