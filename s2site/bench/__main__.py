import sys

from s2site.bench.cli import main

sys.exit(main(sys.argv[1:]))
