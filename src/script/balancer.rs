//! Balancing with script closures: `join_cluster`'s `weight` and `plan` callbacks,
//! and `base_balance_plan`, the default plan a script can start from.

use super::convert::{err, number, plan_of, plan_to_array, rt};
use crate::balance::{base_balance_plan, Holder, Move};
use crate::ops::Balancer;
use crate::topology::Node;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, NativeCallContext};

/// `base_balance_plan`: the default plan for these masters (Node values) and weights.
pub(super) fn default_plan(masters: &Array, weights: &[f64]) -> Result<Array, Box<EvalAltResult>> {
    let nodes = masters
        .iter()
        .map(|d| {
            d.clone().try_cast::<Node>().ok_or_else(|| {
                err(format!(
                    "base_balance_plan: expected Node values, got {}",
                    d.type_name()
                ))
            })
        })
        .collect::<Result<Vec<Node>, _>>()?;
    let holders: Vec<Holder> = crate::ops::holders(&nodes, weights);
    base_balance_plan(&holders)
        .map(|p| plan_to_array(&p))
        .map_err(rt)
}

/// A balancer whose weight and plan come from script closures.
pub(super) struct ScriptBalancer<'a> {
    pub(super) ctx: &'a NativeCallContext<'a>,
    pub(super) weight: Option<FnPtr>,
    pub(super) plan: Option<FnPtr>,
    /// The script's own error, kept whole so its position and call chain survive.
    pub(super) script_error: Option<Box<EvalAltResult>>,
}

impl ScriptBalancer<'_> {
    fn fail(&mut self, e: Box<EvalAltResult>, what: String) -> anyhow::Error {
        let msg = format!("{what}: {e}");
        self.script_error = Some(e);
        anyhow::anyhow!(msg)
    }
}

impl Balancer for ScriptBalancer<'_> {
    fn weight(&mut self, node: &Node) -> anyhow::Result<f64> {
        let Some(f) = self.weight.clone() else {
            return Ok(1.0);
        };
        let v = f
            .call_within_context::<Dynamic>(self.ctx, (Dynamic::from(node.clone()),))
            .map_err(|e| self.fail(e, format!("the weight callback failed for {}", node.addr())))?;
        number(&v, &format!("the weight of {}", node.addr()))
            .map_err(|e| self.fail(e, "bad weight".into()))
    }

    fn plan(&mut self, masters: &[Node], new: &Node, weights: &[f64]) -> anyhow::Result<Vec<Move>> {
        let Some(f) = self.plan.clone() else {
            return base_balance_plan(&crate::ops::holders(masters, weights));
        };
        let nodes: Array = masters.iter().cloned().map(Dynamic::from).collect();
        let v = f
            .call_within_context::<Dynamic>(self.ctx, (nodes, Dynamic::from(new.clone())))
            .map_err(|e| self.fail(e, "the plan callback failed".into()))?;
        plan_of(v, masters).map_err(|e| anyhow::anyhow!("{e}"))
    }
}
