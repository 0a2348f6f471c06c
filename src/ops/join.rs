//! `join` / `join_no_load`: a free node enters a cluster, as an empty master or with
//! its share of slots chosen by a [`Balancer`].

use super::rejoin::with_short_node_timeout;
use super::{
    concrete, ensure_healthy_warn, execute, free_nodes, holders, live_addrs, meet_every_member,
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
    join_no_load_many(b, cluster, std::slice::from_ref(new))
}

/// Adds the free nodes `news` to the cluster of `cluster` with no slots, all at once:
/// every one is checked before any is met, they meet the members and each other,
/// and one wait covers them all (their rejoin delays run together, instead of one
/// after the other). Returns the topology after.
pub fn join_no_load_many(b: &mut dyn Backend, cluster: &Addr, news: &[Addr]) -> Result<Topology> {
    if news.is_empty() {
        bail!("no node to add");
    }
    super::take_lease(b, "join_no_load", cluster, news)?;
    let topo = topology(b, cluster)?;
    let views = check_join(b, cluster, news, &topo)?;
    let joining: Vec<(Addr, String)> = news
        .iter()
        .zip(&views)
        .map(|(a, v)| (a.clone(), v.myself().node_id.clone()))
        .collect();
    enter(b, cluster, &joining, &topo)
}

/// Preconditions of both joins: a healthy cluster, and free nodes `news` (each
/// given once) not already in it; returns their views, all read at once.
fn check_join(
    b: &mut dyn Backend,
    cluster: &Addr,
    news: &[Addr],
    topo: &Topology,
) -> Result<Vec<View>> {
    ensure_healthy_warn(b, topo, "add a node")?;
    let views = free_nodes(b, news)?;
    for (i, (new, v)) in news.iter().zip(&views).enumerate() {
        let id = &v.myself().node_id;
        if topo.node(id).is_some() {
            bail!("{new} is already a member of the cluster of {cluster}");
        }
        let earlier = news[..i].iter().zip(&views);
        if let Some((first, _)) = earlier.into_iter().find(|(_, w)| &w.myself().node_id == id) {
            if first == new {
                bail!("{new} is given twice; give each node once");
            }
            bail!("{new} and {first} are the same node; give each node once");
        }
    }
    Ok(views)
}

/// Meets the new nodes `joining` (address, id) with every member and each other,
/// and waits until every node agrees; returns the new topology.
fn enter(
    b: &mut dyn Backend,
    cluster: &Addr,
    joining: &[(Addr, String)],
    topo: &Topology,
) -> Result<Topology> {
    let mut members = live_addrs(topo);
    for (i, (new, _)) in joining.iter().enumerate() {
        meet_every_member(b, new, &members)?;
        // The new nodes after it: they would learn of each other by gossip, later.
        for (other, _) in &joining[i + 1..] {
            b.meet(new, other)?;
        }
    }
    let news: Vec<Addr> = joining.iter().map(|(a, _)| a.clone()).collect();
    let names = match news.as_slice() {
        [one] => one.to_string(),
        many => format!("the {} new nodes", many.len()),
    };
    step(
        b,
        format!("waiting for {} nodes to know {names}", members.len()),
    );
    wait::all_known_by_all(b, &members, joining)?;
    members.extend(news.iter().cloned());
    // The new masters report ok after Redis's rejoin delay, shortened for them alone
    // (see `rejoin`): until then they would refuse the keys of any slot moved to them.
    let why = if news.len() == 1 {
        "it reports ok"
    } else {
        "they report ok"
    };
    with_short_node_timeout(b, &news, why, |b| {
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
    let Some(nv) = check_join(b, cluster, std::slice::from_ref(new), &before)?.pop() else {
        bail!("{new}: no view read");
    };
    // Ask the balancer before anything changes, so a bad plan refuses the join whole.
    let mut masters: Vec<Node> = before.masters().cloned().collect();
    let mut new_node = nv.myself().clone();
    new_node.flags.retain(|f| f != "myself");
    masters.push(new_node.clone());
    let moves = plan_moves(balancer, &masters, &new_node)?;
    let after = enter(
        b,
        cluster,
        &[(new.clone(), new_node.node_id.clone())],
        &before,
    )?;
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
