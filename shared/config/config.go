// Package config declares command-line flags that fall back to environment
// variables, and the settings every process shares: how to reach NATS and
// how to store data. Configuration is parsed once in main into plain structs.
package config

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// Flags registers flags on a FlagSet whose defaults come from the
// environment when the variable is set.
type Flags struct {
	FS     *flag.FlagSet
	Getenv func(string) string
	err    error
}

// Err returns the first environment value that could not be parsed.
func (f *Flags) Err() error { return f.err }

func (f *Flags) env(name string) (string, bool) {
	if name == "" || f.Getenv == nil {
		return "", false
	}
	v := f.Getenv(name)
	return v, v != ""
}

func usage(u, env string) string {
	if env == "" {
		return u
	}
	return fmt.Sprintf("%s (env %s)", u, env)
}

// String registers a string flag.
func (f *Flags) String(p *string, name, env, def, u string) {
	if v, ok := f.env(env); ok {
		def = v
	}
	f.FS.StringVar(p, name, def, usage(u, env))
}

// Int registers an int flag.
func (f *Flags) Int(p *int, name, env string, def int, u string) {
	if v, ok := f.env(env); ok {
		n, err := strconv.Atoi(v)
		f.keep(env, err)
		if err == nil {
			def = n
		}
	}
	f.FS.IntVar(p, name, def, usage(u, env))
}

// Int64 registers an int64 flag.
func (f *Flags) Int64(p *int64, name, env string, def int64, u string) {
	if v, ok := f.env(env); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		f.keep(env, err)
		if err == nil {
			def = n
		}
	}
	f.FS.Int64Var(p, name, def, usage(u, env))
}

// Bool registers a bool flag.
func (f *Flags) Bool(p *bool, name, env string, def bool, u string) {
	if v, ok := f.env(env); ok {
		b, err := strconv.ParseBool(v)
		f.keep(env, err)
		if err == nil {
			def = b
		}
	}
	f.FS.BoolVar(p, name, def, usage(u, env))
}

// Duration registers a duration flag. The environment value may be a Go
// duration ("30s") or a whole number of seconds, as the original's variables were.
func (f *Flags) Duration(p *time.Duration, name, env string, def time.Duration, u string) {
	if v, ok := f.env(env); ok {
		d, err := parseDuration(v)
		f.keep(env, err)
		if err == nil {
			def = d
		}
	}
	f.FS.DurationVar(p, name, def, usage(u, env))
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

func (f *Flags) keep(env string, err error) {
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("config: %s: %w", env, err)
	}
}
