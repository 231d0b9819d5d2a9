import sys

from postmon.cli import main

sys.exit(main())
