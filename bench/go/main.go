// The Go twins of bench/lua/W*.lua: the same workloads, counts and channel
// capacities, one per run, selected with -w; -p sets GOMAXPROCS.  Each run
// checks its result (exit 3 if wrong) and prints one line of JSON.
//
//	build/bench/gobench -w W1 -p 2
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A field of /proc/self/status in kB (VmHWM = peak RSS, VmRSS = RSS now).
func statusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(field + `:\s*(\d+)\s*kB`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

func check(ok bool, format string, args ...interface{}) {
	if !ok {
		fmt.Fprintf(os.Stderr, "CHECK FAILED: "+format+"\n", args...)
		os.Exit(3)
	}
}

func encode(v interface{}) string {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', 6, 64)
	case string:
		return strconv.Quote(x)
	}
	return strconv.Quote(fmt.Sprint(v))
}

// One JSON line, fields in the same order as bench/lua/lib.lua writes them.
func report(id, figure string, value float64, unit string, extra map[string]interface{}) {
	if extra == nil {
		extra = map[string]interface{}{}
	}
	extra["procs"] = runtime.GOMAXPROCS(0)
	if _, ok := extra["rss_kb"]; !ok {
		extra["rss_kb"] = statusKB("VmHWM")
	}
	parts := []string{
		`"id":` + encode(id), `"figure":` + encode(figure),
		`"value":` + encode(value), `"unit":` + encode(unit), `"impl":"go"`,
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, encode(k)+":"+encode(extra[k]))
	}
	fmt.Println("{" + strings.Join(parts, ",") + "}")
}

func since(t0 time.Time) float64 { return time.Since(t0).Seconds() }

// W1 ping-pong: 200,000 round trips over two unbuffered channels.
func w1() {
	const N = 200000
	ping, pong := make(chan int), make(chan int)
	t0 := time.Now()
	go func() {
		for i := 0; i < N; i++ {
			pong <- (<-ping) + 1
		}
	}()
	x := 0
	for i := 0; i < N; i++ {
		ping <- x
		x = <-pong
	}
	dt := since(t0)
	check(x == N, "ball is %d, want %d", x, N)
	report("W1", "ns_per_roundtrip", dt/N*1e9, "ns", map[string]interface{}{"n": N, "seconds": dt})
}

// W2 spawn: 100,000 goroutines send their index to one unbuffered channel.
func w2() {
	const N = 100000
	ch := make(chan int)
	t0 := time.Now()
	for i := 1; i <= N; i++ {
		go func(k int) { ch <- k }(i)
	}
	sum := 0
	for i := 0; i < N; i++ {
		sum += <-ch
	}
	dt := since(t0)
	check(sum == N*(N+1)/2, "sum is %d, want %d", sum, N*(N+1)/2)
	report("W2", "spawns_per_s", N/dt, "1/s", map[string]interface{}{"n": N, "seconds": dt})
}

// W2b parked: 10,000 goroutines blocked on one receive; RSS before/after.
func w2b() {
	const N = 10000
	gate := make(chan int)
	var started, finished sync.WaitGroup
	runtime.GC()
	before := statusKB("VmRSS")
	started.Add(N)
	finished.Add(N)
	for i := 0; i < N; i++ {
		go func() {
			started.Done()
			<-gate
			finished.Done()
		}()
	}
	started.Wait()
	time.Sleep(200 * time.Millisecond)
	alive := runtime.NumGoroutine()
	after := statusKB("VmRSS")
	close(gate)
	finished.Wait()
	check(alive == N+1, "%d goroutines alive while parked, want %d", alive, N+1)
	report("W2b", "bytes_per_goroutine", float64(after-before)*1024/N, "B",
		map[string]interface{}{"n": N, "rss_before_kb": before, "rss_after_kb": after})
}

// W3 throughput: 1,000,000 integers through a buffered channel of 256.
func w3() {
	const N, CAP = 1000000, 256
	ch := make(chan int, CAP)
	t0 := time.Now()
	go func() {
		for i := 1; i <= N; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum, count := 0, 0
	for v := range ch {
		sum += v
		count++
	}
	dt := since(t0)
	check(count == N && sum == N*(N+1)/2, "got %d values summing to %d", count, sum)
	report("W3", "msgs_per_s", N/dt, "1/s", map[string]interface{}{"n": N, "cap": CAP, "seconds": dt})
}

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// W4 parallel CPU: fib(32) twice in sequence, then twice in two goroutines.
func w4() {
	const K, WANT = 32, 2178309
	t0 := time.Now()
	a, b := fib(K), fib(K)
	seq := since(t0)
	check(a == WANT && b == WANT, "sequential fib(%d) = %d, %d", K, a, b)
	results := make(chan int, 2)
	t0 = time.Now()
	for i := 0; i < 2; i++ {
		go func() { results <- fib(K) }()
	}
	a, b = <-results, <-results
	par := since(t0)
	check(a == WANT && b == WANT, "parallel fib(%d) = %d, %d", K, a, b)
	report("W4", "speedup", seq/par, "x", map[string]interface{}{"fib": K, "seq_s": seq, "par_s": par})
}

// W5 table messages: the Lua table is a struct here, its tags a fresh slice.
type item struct {
	ID   int
	Name string
	Tags []string
	X    float64
}

func w5() {
	const N, CAP = 100000, 256
	ch := make(chan item, CAP)
	t0 := time.Now()
	go func() {
		for i := 1; i <= N; i++ {
			ch <- item{ID: i, Name: "item" + strconv.Itoa(i), Tags: []string{"a", "b", "c"}, X: 1.5}
		}
		close(ch)
	}()
	count, bad := 0, 0
	for m := range ch {
		count++
		if m.ID != count || m.Name != "item"+strconv.Itoa(count) || m.X != 1.5 || len(m.Tags) != 3 ||
			m.Tags[0] != "a" || m.Tags[1] != "b" || m.Tags[2] != "c" {
			bad++
		}
	}
	dt := since(t0)
	check(count == N && bad == 0, "got %d messages, %d wrong", count, bad)
	report("W5", "msgs_per_s", N/dt, "1/s", map[string]interface{}{"n": N, "cap": CAP, "seconds": dt})
}

// W6 fan-in: 100 producers x 10,000 integers into one buffered channel of 256.
func w6() {
	const P, M, CAP = 100, 10000, 256
	const N = P * M
	ch := make(chan int, CAP)
	t0 := time.Now()
	for p := 0; p < P; p++ {
		go func(base int) {
			for i := base + 1; i <= base+M; i++ {
				ch <- i
			}
		}(p * M)
	}
	sum := 0
	for i := 0; i < N; i++ {
		sum += <-ch
	}
	dt := since(t0)
	check(sum == N*(N+1)/2, "sum is %d, want %d", sum, N*(N+1)/2)
	report("W6", "msgs_per_s", N/dt, "1/s",
		map[string]interface{}{"n": N, "producers": P, "cap": CAP, "seconds": dt})
}

// W7 skynet: 10 children a node down to BENCH_W7_LEAVES leaves (default 10^6).
func skynet(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	step := size / div
	for i := 0; i < div; i++ {
		go skynet(rc, num+i*step, step, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func w7() {
	const DIV = 10
	leaves := 1000000
	if s := os.Getenv("BENCH_W7_LEAVES"); s != "" {
		n, err := strconv.Atoi(s)
		check(err == nil, "BENCH_W7_LEAVES must be a power of 10, not %s", s)
		leaves = n
	}
	n := leaves
	for n > 1 && n%DIV == 0 {
		n /= DIV
	}
	check(n == 1, "BENCH_W7_LEAVES must be a power of 10, not %d", leaves)
	t0 := time.Now()
	c := make(chan int)
	go skynet(c, 0, leaves, DIV)
	sum := <-c
	dt := since(t0)
	want := leaves * (leaves - 1) / 2
	check(sum == want, "sum is %d, want %d", sum, want)
	report("W7", "seconds", dt, "s", map[string]interface{}{"leaves": leaves})
}

// W8 select: main selects over 4 unbuffered channels, one producer each.
func w8() {
	const P, N = 4, 1000000
	const M = N / P
	var chans [P]chan int
	for p := range chans {
		chans[p] = make(chan int)
	}
	t0 := time.Now()
	for p := 0; p < P; p++ {
		go func(ch chan int, base int) {
			for i := base + 1; i <= base+M; i++ {
				ch <- i
			}
		}(chans[p], p*M)
	}
	sum := 0
	var per [P]int
	for i := 0; i < N; i++ {
		select {
		case v := <-chans[0]:
			sum += v
			per[0]++
		case v := <-chans[1]:
			sum += v
			per[1]++
		case v := <-chans[2]:
			sum += v
			per[2]++
		case v := <-chans[3]:
			sum += v
			per[3]++
		}
	}
	dt := since(t0)
	check(sum == N*(N+1)/2, "sum is %d, want %d", sum, N*(N+1)/2)
	for p := 0; p < P; p++ {
		check(per[p] == M, "channel %d delivered %d, want %d", p+1, per[p], M)
	}
	report("W8", "msgs_per_s", N/dt, "1/s", map[string]interface{}{"n": N, "producers": P, "seconds": dt})
}

func main() {
	w := flag.String("w", "", "workload: W1 W2 W2b W3 W4 W5 W6 W7 W8")
	p := flag.Int("p", runtime.NumCPU(), "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*p)
	workloads := map[string]func(){
		"W1": w1, "W2": w2, "W2b": w2b, "W3": w3, "W4": w4,
		"W5": w5, "W6": w6, "W7": w7, "W8": w8,
	}
	f, ok := workloads[*w]
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: gobench -w W1|W2|W2b|W3|W4|W5|W6|W7|W8 [-p N]\n")
		os.Exit(2)
	}
	f()
}
