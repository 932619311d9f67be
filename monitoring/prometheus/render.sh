#!/bin/sh
# Render prometheus.yml.tmpl from the environment inside the Prometheus
# container (compose mode): ${NAME} -> $NAME; comment lines copied as they are.
# Native mode renders the same template in Python (minirec.infra.prometheus).
set -eu
awk '
  /^[[:space:]]*#/ { print; next }
  {
    line = $0; out = ""
    while (match(line, /\$\{[A-Z0-9_]+\}/)) {
      name = substr(line, RSTART + 2, RLENGTH - 3)
      if (!(name in ENVIRON)) { print "render.sh: no value for " name > "/dev/stderr"; exit 1 }
      out = out substr(line, 1, RSTART - 1) ENVIRON[name]
      line = substr(line, RSTART + RLENGTH)
    }
    print out line
  }' "$1" > "$2"
