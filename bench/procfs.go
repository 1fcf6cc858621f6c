package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTime returns the user plus system CPU time the process pid has used,
// from /proc/PID/stat (10 ms resolution): the same source as the
// process_cpu_seconds_total metric, read without a scrape's own cost.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ... utime is field 14, stime 15; f[0] is field 3.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 13", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q are not numbers", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// Memory is a process's resident memory, from /proc/PID/status.
type Memory struct {
	// RSS is VmRSS: every resident page, anonymous and file-backed.
	RSS int64
	// Anon is RssAnon: the heap, stacks and runtime structures.
	Anon int64
	// File is RssFile: pages of mapped files (the binary's code and data),
	// shared with other processes mapping them and reclaimable.
	File int64
}

// String formats m in MiB.
func (m Memory) String() string {
	return fmt.Sprintf("RSS %.1f MiB (anon %.1f, file %.1f)", float64(m.RSS)/(1<<20), float64(m.Anon)/(1<<20), float64(m.File)/(1<<20))
}

// ReadMemory returns the resident memory of the process pid.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		name, rest, _ := strings.Cut(line, "\t")
		dst, ok := fields[name]
		if !ok {
			continue
		}
		v := strings.Fields(rest)
		if len(v) != 2 || v[1] != "kB" {
			return Memory{}, fmt.Errorf("/proc/%d/status: unexpected line %q", pid, line)
		}
		kb, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status: %s %q: %v", pid, name, v[0], err)
		}
		*dst = kb * 1024
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if found != len(fields) {
		return Memory{}, fmt.Errorf("/proc/%d/status lacks VmRSS, RssAnon or RssFile", pid)
	}
	return m, nil
}
