//! What a command does to a node, judged from its words alone: whether it only
//! reads (what a dry run may pass through to real nodes, and what the cluster
//! handle may send to a replica).

/// Commands a dry run may pass through to real nodes: they only read.
pub fn is_read_only(args: &[Vec<u8>]) -> bool {
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
    };
    let Some(cmd) = word(0) else { return false };
    match cmd.as_str() {
        "CLUSTER" => matches!(
            word(1).as_deref(),
            Some(
                "INFO"
                    | "NODES"
                    | "SLOTS"
                    | "SHARDS"
                    | "MYID"
                    | "KEYSLOT"
                    | "COUNTKEYSINSLOT"
                    | "GETKEYSINSLOT"
                    | "REPLICAS"
                    | "SLAVES"
                    | "GETSLOTMIGRATIONS"
                    | "LINKS"
                    | "MYSHARDID"
                    | "COUNT-FAILURE-REPORTS"
            )
        ),
        "CONFIG" => matches!(word(1).as_deref(), Some("GET")),
        "INFO" | "PING" | "DBSIZE" | "GET" | "MGET" | "EXISTS" | "TYPE" | "TTL" | "PTTL"
        | "STRLEN" | "HGET" | "HGETALL" | "HLEN" | "LLEN" | "LRANGE" | "SCARD" | "SMEMBERS"
        | "ZCARD" | "ZRANGE" | "SCAN" | "KEYS" | "MEMORY" | "TIME" | "ROLE" | "LASTSAVE"
        | "ECHO" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_read_only;

    fn words(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn reads_pass_and_writes_do_not() {
        for read in [
            "cluster nodes",
            "CLUSTER GETSLOTMIGRATIONS",
            "config get maxmemory",
            "get k",
            "dbsize",
        ] {
            assert!(is_read_only(&words(read)), "{read}");
        }
        for write in [
            "cluster setslot 1 stable",
            "CLUSTER MIGRATESLOTS SLOTSRANGE 0 1 NODE x",
            "config set maxmemory 1",
            "set k v",
            "flushall",
            "cluster",
        ] {
            assert!(!is_read_only(&words(write)), "{write}");
        }
        assert!(!is_read_only(&[]));
    }
}
