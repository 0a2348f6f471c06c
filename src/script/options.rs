//! Reading the option maps and plans scripts pass to API functions
//! (`#{ max_slots: N }`, `[src, dst, count]`), refusing unknown keys and wrong types
//! with errors that name the function.

use super::convert::{err, slots_of};
use crate::ops;
use crate::topology::Node;
use rhai::{Array, Dynamic, EvalAltResult, Map};

/// `#{ max_slots: N }` (slots per ADDSLOTS; 16384 when not given), the only key.
pub(super) fn max_slots(opts: &Map, fname: &str) -> Result<usize, Box<EvalAltResult>> {
    check_keys(opts, &["max_slots"], fname)?;
    match opts.get("max_slots") {
        None => Ok(16384),
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 => Ok(n as usize),
            _ => Err(err(format!(
                "{fname}: max_slots must be an integer >= 1, got {v}"
            ))),
        },
    }
}

/// The integer option `key` (`default` when not given), refused when negative.
pub(super) fn int_opt(
    opts: &Map,
    key: &str,
    default: usize,
    fname: &str,
) -> Result<usize, Box<EvalAltResult>> {
    match opts.get(key) {
        None => Ok(default),
        Some(v) => match v.as_int() {
            Ok(n) if n >= 0 => Ok(n as usize),
            _ => Err(err(format!(
                "{fname}: {key} must be a non-negative integer, got {v}"
            ))),
        },
    }
}

/// Refuses an option map holding a key not in `allowed`.
pub(super) fn check_keys(
    opts: &Map,
    allowed: &[&str],
    fname: &str,
) -> Result<(), Box<EvalAltResult>> {
    match opts.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(format!(
            "{fname}: unknown option '{k}' (expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A plan from a script for `apply_plan`: `[src, dst, count]` or `#{ src, dst,
/// count }` / `#{ src, dst, slots }` per move; ends are Nodes or strings.
pub(super) fn plan_moves_of(plan: Array) -> Result<Vec<ops::PlanMove>, Box<EvalAltResult>> {
    let end = |d: &Dynamic, at: &str| -> Result<String, Box<EvalAltResult>> {
        if let Some(n) = d.clone().try_cast::<Node>() {
            return Ok(n.node_id);
        }
        d.clone()
            .into_immutable_string()
            .map(|s| s.to_string())
            .map_err(|t| {
                err(format!(
                    "{at}: expected a node, a node id or an address, got {t}"
                ))
            })
    };
    let count = |d: &Dynamic, at: &str| -> Result<ops::Amount, Box<EvalAltResult>> {
        match d.as_int() {
            Ok(n) if n >= 0 => Ok(ops::Amount::Count(n as usize)),
            Ok(n) => Err(err(format!("{at}: count must not be negative, got {n}"))),
            Err(t) => Err(err(format!("{at}: count must be an integer, got {t}"))),
        }
    };
    plan.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("apply_plan: plan move #{}", i + 1);
            if let Some(a) = item.clone().try_cast::<Array>() {
                if a.len() != 3 {
                    return Err(err(format!(
                        "{at}: expected [src, dst, count], got {} items",
                        a.len()
                    )));
                }
                return Ok(ops::PlanMove {
                    src: end(&a[0], &at)?,
                    dst: end(&a[1], &at)?,
                    amount: count(&a[2], &at)?,
                });
            }
            let Some(m) = item.clone().try_cast::<Map>() else {
                return Err(err(format!(
                    "{at}: expected [src, dst, count] or #{{ src, dst, slots | count }}, got {}",
                    item.type_name()
                )));
            };
            check_keys(&m, &["src", "dst", "slots", "count"], "apply_plan")?;
            let get = |k: &str| m.get(k).ok_or_else(|| err(format!("{at}: missing '{k}'")));
            let amount = match (m.get("slots"), m.get("count")) {
                (Some(s), None) => {
                    ops::Amount::Slots(slots_of(s).map_err(|e| err(format!("{at}: {e}")))?)
                }
                (None, Some(c)) => count(c, &at)?,
                _ => return Err(err(format!("{at}: give either 'slots' or 'count'"))),
            };
            Ok(ops::PlanMove {
                src: end(get("src")?, &at)?,
                dst: end(get("dst")?, &at)?,
                amount,
            })
        })
        .collect()
}
