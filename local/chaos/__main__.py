import sys

from local.chaos.run import main

sys.exit(main())
