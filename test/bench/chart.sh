#!/usr/bin/env bash
# chart.sh OUT_DIR TITLE: draw OUT_DIR/chart.png from the chart.simple.dat and
# chart.prepared.dat that run.sh writes (columns: workload, then median, min
# and max of the ratio to literal for each variant).  Rerun it by hand to
# redraw a chart.
set -euo pipefail
out=$1
title=$2
ncol=$(head -1 "$out/chart.simple.dat" | wc -w)
nv=$(( (ncol - 1) / 3 ))
gnuplot <<GP
set terminal pngcairo size 1500,1000 font ",10" noenhanced
set output '$out/chart.png'
set datafile missing '?'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set logscale y
set yrange [0.005:2]
set ytics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 1.5)
set grid ytics
set key outside right top
set ylabel "throughput / literal (log scale)"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5
set multiplot layout 2,1 title "$title"
set title "simple protocol"
plot for [i=0:$nv-1] '$out/chart.simple.dat' using (column(2+3*i)):(column(3+3*i)):(column(4+3*i)):xtic(1) title columnhead(2+3*i)
set title "prepared protocol"
plot for [i=0:$nv-1] '$out/chart.prepared.dat' using (column(2+3*i)):(column(3+3*i)):(column(4+3*i)):xtic(1) title columnhead(2+3*i)
unset multiplot
GP
