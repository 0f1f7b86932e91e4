import sys

from demo_game.cli import main

sys.exit(main())
