import sys

from srlab.weights.export import main

sys.exit(main())
