#!/usr/bin/env bash
# The full-length runs of the latent-category issue, in the order they matter, through
# lcreg reproduce's restartable queue (a finished run is skipped, an interrupted one resumed):
# run it again in a later session (or on a GPU) and it continues where it stopped.
#
#   bash benchmarks/latent_queue.sh [extra lcreg train args]   (default: --compile on amp=bf16)
#
# 1. LCReg with the default reading and the screen's runner-up (logits_detach), seeds 0-2,
#    beside MiSLAS and the as-written reading (results/readings.md: mean and std over 3 seeds);
# 2. Table 7 under the default at IF 100 (latent categories alone, + augmentation, +
#    reconstruction, all), and the baseline / full rows at IF 50 and 10.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/cifar10-jpeg.tar.gz}
ARGS=${*:-"--compile on amp=bf16"}
q() { lcreg reproduce "$@" --data-dir "$DATA" --train-args "$ARGS"; }
q readings --methods lcreg --seeds 0
q readings --methods mislas --seeds 1
q readings --methods lcreg --seeds 1,2
q readings --methods mislas,as_written --seeds 2
q readings --methods logits_detach --seeds 0,1,2
q table7 --imbalance-factors 100 --seeds 0
q table7 --imbalance-factors 50,10 --methods baseline,all --seeds 0
lcreg reproduce readings --seeds 0,1,2 --table-only
lcreg reproduce table7 --seeds 0 --table-only
