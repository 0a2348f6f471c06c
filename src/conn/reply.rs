//! What a server's error reply means, read in one place. Code decides on the
//! error's code (its first word: `BUSYKEY`, `IOERR`, `TRYAGAIN`) wherever the
//! server sends one; a few refusals come only as a generic `ERR` whose text is all
//! that tells them apart, and those texts are matched here and nowhere else
//! ([`refusal`]), each with the server message it stands for.

/// The error code of a server error reply: its first word (`BUSYKEY`, `IOERR`), as
/// the server sent it or as the redis crate prints it (`"IOERR": ...`). A `MIGRATE`
/// passes the target's own error on inside an `ERR` ("Target instance replied with
/// error: BUSYKEY ..."): then the target's code is the one that counts.
pub fn error_code(err: &str) -> &str {
    const RELAYED: &str = "Target instance replied with error: ";
    let err = match err.find(RELAYED) {
        Some(at) => &err[at + RELAYED.len()..],
        None => err,
    };
    err.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(|c| c == '"' || c == ':')
}

/// A refusal the code acts on, told apart from other errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `ERR This instance has cluster support disabled`: not cluster-enabled.
    NotClusterEnabled,
    /// `ERR CLUSTER RESET can't be called with master nodes containing keys`.
    HoldsKeys,
    /// `ERR Please use SETSLOT only with masters.`: a node that became a replica.
    NotAMaster,
    /// `BUSYKEY`: the destination already holds the key.
    BusyKey,
    /// `TRYAGAIN`: a multi-key command met keys split by a slot migration.
    TryAgain,
    /// Anything else.
    Other,
}

/// What the server error `err` (as the server sent it or as the redis crate
/// prints it) refuses.
pub fn refusal(err: &str) -> Refusal {
    match error_code(err) {
        "BUSYKEY" => return Refusal::BusyKey,
        "TRYAGAIN" | "TryAgain" => return Refusal::TryAgain,
        _ => {}
    }
    if err.contains("cluster support disabled") {
        Refusal::NotClusterEnabled
    } else if err.contains("master nodes containing keys") {
        Refusal::HoldsKeys
    } else if err.contains("SETSLOT only with masters") {
        Refusal::NotAMaster
    } else {
        Refusal::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_either_spelling() {
        assert_eq!(
            error_code("BUSYKEY Target key name already exists."),
            "BUSYKEY"
        );
        assert_eq!(
            error_code("\"IOERR\": error or timeout reading to target instance"),
            "IOERR"
        );
        assert_eq!(error_code(""), "");
        assert_eq!(
            error_code("ResponseError: Target instance replied with error: BUSYKEY Target key name already exists."),
            "BUSYKEY"
        );
    }

    #[test]
    fn refusals_from_the_servers_own_messages() {
        let cases = [
            (
                "ERR This instance has cluster support disabled",
                Refusal::NotClusterEnabled,
            ),
            (
                "ERR CLUSTER RESET can't be called with master nodes containing keys",
                Refusal::HoldsKeys,
            ),
            (
                "ERR Please use SETSLOT only with masters.",
                Refusal::NotAMaster,
            ),
            ("BUSYKEY Target key name already exists.", Refusal::BusyKey),
            (
                "ERR Target instance replied with error: BUSYKEY Target key name already exists.",
                Refusal::BusyKey,
            ),
            (
                "TryAgain: Multiple keys request during rehashing of slot",
                Refusal::TryAgain,
            ),
            (
                "TRYAGAIN Multiple keys request during rehashing of slot",
                Refusal::TryAgain,
            ),
            ("ERR unknown command 'FOO'", Refusal::Other),
            ("", Refusal::Other),
        ];
        for (err, want) in cases {
            assert_eq!(refusal(err), want, "{err}");
        }
    }
}
