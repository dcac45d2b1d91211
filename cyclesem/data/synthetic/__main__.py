"""python -m cyclesem.data.synthetic ROOT [--seed N]: render the embedded pair (see `pair.main`)."""

from cyclesem.data.synthetic.pair import main

main()
