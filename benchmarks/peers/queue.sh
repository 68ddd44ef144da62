#!/usr/bin/env bash
# Issue 24's runs, one at a time, each resumed where an earlier process stopped:
# the peers' own code (MiSLAS; LDAM-DRW and CE from LDAM-DRW's code) on the CIFAR-10 JPEG copy,
# then the balanced ResNet-32 anchor in lcreg, then results/peers.md.
#
#   bash benchmarks/peers/queue.sh [PEERS]      PEERS: folder holding the peers' checkouts
#                                               (default ../peers: MiSLAS/ and LDAM-DRW/)
# The checkouts stay outside this repository, unchanged (run.py refuses local changes):
#   git clone https://github.com/dvlab-research/MiSLAS ../peers/MiSLAS   (commit 0fc381e)
#   git clone https://github.com/kaidic/LDAM-DRW ../peers/LDAM-DRW       (commit 2536330)
# (from a mirror that lacks MiSLAS's large ImageNet/iNat list files: git clone --no-checkout,
#  then git sparse-checkout set --no-cone '/*' '!/datasets/data_txt/' and git checkout;
#  CIFAR never reads them)
# and need `pip install yacs tensorboardX scikit-learn` beside lcreg.
# Measured on the 2-core CPU (fp32 eager, as the peers run): MiSLAS stage 1 with its test
# pass took 67 s an epoch alone (epochs 21-138, its log's timestamps), about 96 s beside
# other work, so a 200-epoch run takes 4 to 5 h.
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERS=${1:-../peers}
DATA=${DATA:-data/cifar10-jpeg.tar.gz}
PY=${PYTHON:-python3}
$PY benchmarks/peers/run.py mislas --peer-dir "$PEERS/MiSLAS" --out results/peers/mislas_if100 --jpeg "$DATA"
$PY benchmarks/peers/peers_table.py > /dev/null
# our LDAM-DRW with the one recipe difference found in LDAM-DRW's code: lr x0.01 at each
# milestone (ours x0.1; docs: Peers and anchors); about 52 min here, bf16 compiled
AB=results/peers/ab/ldam_drw_lr_decay001_seed0
if [ ! -f "$AB/final_metrics.json" ]; then
    if [ -f "$AB/checkpoint.pt" ]; then
        $PY -m lcreg train --resume "$AB" --no-progress
    else
        $PY -m lcreg train cifar10_lt_if100 --data-dir "$DATA" --seed 0 --out "$AB" --no-progress \
            --compile on amp=bf16 method=ldam_drw stage1.lr_decay=0.01
    fi
fi
$PY benchmarks/peers/peers_table.py > /dev/null
$PY benchmarks/peers/run.py ldam_drw --peer-dir "$PEERS/LDAM-DRW" --out results/peers/ldam_drw_if100 --jpeg "$DATA"
$PY benchmarks/peers/peers_table.py > /dev/null
$PY benchmarks/peers/run.py ce --peer-dir "$PEERS/LDAM-DRW" --out results/peers/ce_if100 --jpeg "$DATA"
$PY benchmarks/peers/peers_table.py > /dev/null
ANCHOR=results/anchor/cifar10_balanced_he_seed0
if [ ! -f "$ANCHOR/final_metrics.json" ]; then
    if [ -f "$ANCHOR/checkpoint.pt" ]; then
        $PY -m lcreg train --resume "$ANCHOR" --no-progress
    else
        $PY -m lcreg train experiments/anchor/cifar10_balanced_he.yaml --data-dir "$DATA" --seed 0 \
            --out "$ANCHOR" --no-progress --compile on amp=bf16
    fi
fi
$PY benchmarks/peers/peers_table.py
