import sys

from minirec.pipeline.cli import main

sys.exit(main())
