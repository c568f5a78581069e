#!/bin/sh
# An editor that makes the definition invalid (unknown forward mode).
sed -i "s/<forward mode='nat'>/<forward mode='bogus'>/; s/<forward mode='nat'\/>/<forward mode='bogus'\/>/" "$1"
