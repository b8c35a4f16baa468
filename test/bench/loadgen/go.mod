module cellhost.bench/loadgen

go 1.19
