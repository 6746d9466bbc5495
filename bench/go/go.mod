module goroutine-lua/bench

go 1.19
