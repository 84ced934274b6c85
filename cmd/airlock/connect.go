package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/airlock-dev/airlock/bridge"
)

// agentTokenEnv holds the agent's bearer token for airlock connect.
const agentTokenEnv = "AIRLOCK_TOKEN"

type connectOptions struct {
	tokenFile string
}

func connectFlags(fs *flag.FlagSet) *connectOptions {
	o := &connectOptions{}
	fs.StringVar(&o.tokenFile, "token-file", "", "read the agent's bearer token from `FILE` (readable by its owner only) instead of "+agentTokenEnv)
	return o
}

// cmdConnect is `airlock connect URL`: stdio on one side, the airlock
// service over Streamable HTTP on the other.
func cmdConnect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := mustLookup("connect")
	fs := c.flagSet()
	o := connectFlags(fs)
	pos, err := c.parse(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	token := os.Getenv(agentTokenEnv)
	if o.tokenFile != "" {
		if token, err = readSecretFile(o.tokenFile); err != nil {
			fmt.Fprintf(stderr, "airlock connect: %v\n", err)
			return errReported
		}
	}
	cfg := bridge.Config{URL: pos[0], Token: token, Logger: newLogger(stderr)}
	t, err := bridge.Dial(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "airlock connect: %v\n", err)
		return errReported
	}
	return bridge.Serve(ctx, cfg, t, stdin, stdout)
}
