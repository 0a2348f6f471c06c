//! Operations' events (steps, warnings, progress) as the values a script's
//! `on_progress` callback receives.

use crate::backend::Event;
use rhai::{Dynamic, Map, INT};

/// An operation's event as a script value: `#{ kind: "step" | "warning" | "moving" |
/// "keys", text, ... }` (moves add src, dst, slots_done, slots_total, keys; key jobs
/// add done, total).
pub fn event_value(e: &Event) -> Dynamic {
    let mut m = Map::new();
    let mut put = |k: &str, v: Dynamic| {
        m.insert(k.into(), v);
    };
    let text = match e {
        Event::Step(t) | Event::Warning(t) => t.clone(),
        other => crate::render::event_line(other, crate::render::Painter::new(false, false))
            .trim()
            .to_string(),
    };
    put("text", text.into());
    match e {
        Event::Step(_) => put("kind", "step".into()),
        Event::Warning(_) => put("kind", "warning".into()),
        Event::Progress(p) => {
            put("kind", "moving".into());
            put("src", p.src.clone().into());
            put("dst", p.dst.clone().into());
            put("slots_done", Dynamic::from_int(p.slots_done as INT));
            put("slots_total", Dynamic::from_int(p.slots_total as INT));
            put("keys", Dynamic::from_int(p.keys_moved as INT));
        }
        Event::Keys(k) => {
            put("kind", "keys".into());
            put("done", Dynamic::from_int(k.done as INT));
            put("total", Dynamic::from_int(k.total as INT));
        }
    }
    m.into()
}
