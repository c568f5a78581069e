#!/bin/sh
# An editor that changes the bridge name.
sed -i 's/vnbr1/vnbr9/' "$1"
