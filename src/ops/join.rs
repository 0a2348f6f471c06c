//! `join` / `join_no_load`: a free node enters a cluster, as an empty master or with
//! its share of slots chosen by a [`Balancer`].

use super::rejoin::with_short_node_timeout;
use super::{
    concrete, ensure_healthy_warn, execute, free_node, holders, live_addrs, meet_every_member,
    step, topology,
};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::balance::{base_balance_plan, validate_plan, Move};
use crate::ops::wait;
use crate::topology::{Node, Topology, View};
use anyhow::{bail, Result};

/// Decides where slots go when a master joins: a weight per master and a plan.
/// The defaults give every master weight 1 and use [`base_balance_plan`].
pub trait Balancer {
    /// The weight of one master.
    fn weight(&mut self, _node: &Node) -> Result<f64> {
        Ok(1.0)
    }
    /// The moves that balance `masters` (the new one included, last) with `weights`.
    fn plan(&mut self, masters: &[Node], _new: &Node, weights: &[f64]) -> Result<Vec<Move>> {
        base_balance_plan(&holders(masters, weights))
    }
}

/// Weight 1 for all, the default plan.
pub struct DefaultBalancer;
impl Balancer for DefaultBalancer {}

/// Adds `new` to the cluster of `cluster` with no slots; returns the topology after.
pub fn join_no_load(b: &mut dyn Backend, cluster: &Addr, new: &Addr) -> Result<Topology> {
    super::take_lease(b, "join_no_load", cluster, std::slice::from_ref(new))?;
    let topo = topology(b, cluster)?;
    let nv = check_join(b, cluster, new, &topo)?;
    enter(b, cluster, new, &nv.myself().node_id, &topo)
}

/// Preconditions of both joins: a healthy cluster and a free node not already in it.
fn check_join(b: &mut dyn Backend, cluster: &Addr, new: &Addr, topo: &Topology) -> Result<View> {
    ensure_healthy_warn(b, topo, "add a node")?;
    let nv = free_node(b, new)?;
    if topo.node(&nv.myself().node_id).is_some() {
        bail!("{new} is already a member of the cluster of {cluster}");
    }
    Ok(nv)
}

/// Meets the new node and waits until every node agrees; returns the new topology.
fn enter(
    b: &mut dyn Backend,
    cluster: &Addr,
    new: &Addr,
    new_id: &str,
    topo: &Topology,
) -> Result<Topology> {
    let mut members = live_addrs(topo);
    meet_every_member(b, new, &members)?;
    step(
        b,
        format!("waiting for {} nodes to know {new}", members.len()),
    );
    wait::known_by_all(b, &members, new_id, new)?;
    members.push(new.clone());
    // The new master reports ok after Redis's rejoin delay, shortened for it alone
    // (see `rejoin`): until then it would refuse the keys of any slot moved to it.
    with_short_node_timeout(b, std::slice::from_ref(new), "it reports ok", |b| {
        step(b, format!("waiting for {} nodes to agree", members.len()));
        wait::converged(b, &members)
    })?;
    topology(b, cluster)
}

/// Adds `new` as a master and moves it its share of slots as `balancer` decides.
pub fn join(
    b: &mut dyn Backend,
    cluster: &Addr,
    new: &Addr,
    balancer: &mut dyn Balancer,
) -> Result<()> {
    super::take_lease(b, "join", cluster, std::slice::from_ref(new))?;
    let before = topology(b, cluster)?;
    let nv = check_join(b, cluster, new, &before)?;
    // Ask the balancer before anything changes, so a bad plan refuses the join whole.
    let mut masters: Vec<Node> = before.masters().cloned().collect();
    let mut new_node = nv.myself().clone();
    new_node.flags.retain(|f| f != "myself");
    masters.push(new_node.clone());
    let moves = plan_moves(balancer, &masters, &new_node)?;
    let after = enter(b, cluster, new, &new_node.node_id, &before)?;
    if moves.is_empty() {
        return Ok(());
    }
    // Slots are picked from the topology after the join (it is the same slot map).
    execute(b, &after, &concrete(&after, &moves)?)?;
    Ok(())
}

/// Weights and plan from the balancer, validated.
fn plan_moves(balancer: &mut dyn Balancer, masters: &[Node], new: &Node) -> Result<Vec<Move>> {
    let weights = masters
        .iter()
        .map(|m| balancer.weight(m))
        .collect::<Result<Vec<f64>>>()?;
    let moves = balancer.plan(masters, new, &weights)?;
    validate_plan(&holders(masters, &weights), &moves)?;
    Ok(moves)
}
