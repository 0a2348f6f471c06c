//! How API functions are registered: each with its signature and one line of doc
//! recorded as it is registered (that record is what `help()` and `redis-trib doc`
//! print: never a hand-kept list), and variadic registration (`execute(addr, "CMD",
//! a1, a2, ...)`).

use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration};

/// One registered function, as `help()` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiDoc {
    /// Function name.
    pub name: String,
    /// `name(param: Type, ...) -> Type`.
    pub signature: String,
    /// One line of documentation.
    pub doc: String,
}

/// The engine functions are registered into, and the docs recorded so far.
pub(super) struct Registry<'a> {
    pub(super) engine: &'a mut Engine,
    pub(super) docs: Vec<ApiDoc>,
}

macro_rules! api {
    ($reg:expr, $name:literal, [$($param:literal),*] -> $ret:literal, $doc:literal, $f:expr) => {{
        rhai::FuncRegistration::new($name)
            .with_params_info([$($param,)* $ret])
            .with_comments([concat!("/// ", $doc)])
            .with_volatility(true)
            .register_into_engine($reg.engine, $f);
        let params: Vec<&str> = vec![$($param),*];
        $reg.docs.push($crate::script::registry::ApiDoc {
            name: $name.into(),
            signature: format!("{}({}) -> {}", $name, params.join(", "), $ret),
            doc: $doc.into(),
        });
    }};
}
pub(crate) use api;

/// Registers `name(first, cmd)`, `name(first, cmd, a1)`, ... up to 12 arguments after
/// the command, all calling `run(first, cmd, args)`.
pub(super) fn register_variadic<F>(engine: &mut Engine, name: &str, run: F)
where
    F: Fn(Dynamic, Dynamic, &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    macro_rules! arity {
        ($($arg:ident),*) => {{
            let f = run.clone();
            FuncRegistration::new(name)
                .with_volatility(true)
                .register_into_engine(engine, move |first: Dynamic, cmd: Dynamic $(, $arg: Dynamic)*| f(first, cmd, &[$($arg),*]));
        }};
    }
    arity!();
    arity!(a1);
    arity!(a1, a2);
    arity!(a1, a2, a3);
    arity!(a1, a2, a3, a4);
    arity!(a1, a2, a3, a4, a5);
    arity!(a1, a2, a3, a4, a5, a6);
    arity!(a1, a2, a3, a4, a5, a6, a7);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
}
