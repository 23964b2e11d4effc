#!/bin/sh
# Lesson 18: the replica service copies this server with pg_basebackup, as its
# superuser with its password; only other containers of the project reach it.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
