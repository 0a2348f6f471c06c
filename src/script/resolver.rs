//! `import "name" as alias;`: modules by name, from the script's folder and the
//! `REDIS_TRIB_PATH` folders (so teams share modules), then the stdlib compiled into
//! the binary. Names only: no paths, so imports reach no file outside those folders.

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The modules shipped inside the binary.
pub const STDLIB: &[(&str, &str)] = &[
    ("balance", include_str!("../../stdlib/balance.rhai")),
    ("health", include_str!("../../stdlib/health.rhai")),
    ("topology", include_str!("../../stdlib/topology.rhai")),
    ("zones", include_str!("../../stdlib/zones.rhai")),
];

/// Resolves module names to compiled modules, once each.
pub struct Resolver {
    paths: Vec<PathBuf>,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl Resolver {
    /// Looks in `paths` (in order), then the stdlib.
    pub fn new(paths: Vec<PathBuf>) -> Resolver {
        Resolver {
            paths,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The search path from `REDIS_TRIB_PATH` (`:`-separated).
    pub fn env_paths() -> Vec<PathBuf> {
        std::env::var_os("REDIS_TRIB_PATH")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default()
    }

    /// Where module `name` was looked for, for the 'Module not found' error.
    pub fn looked_in(&self, name: &str) -> String {
        let files: Vec<String> = self
            .paths
            .iter()
            .map(|d| d.join(format!("{name}.rhai")).display().to_string())
            .collect();
        let stdlib: Vec<&str> = STDLIB.iter().map(|(n, _)| *n).collect();
        let dirs = if files.is_empty() {
            "no folder (no script folder, REDIS_TRIB_PATH unset)".to_string()
        } else {
            files.join(", ")
        };
        format!(
            "looked for {dirs}, then the stdlib: {}; set REDIS_TRIB_PATH to a folder of shared modules",
            stdlib.join(", ")
        )
    }

    /// The source text of module `name` and where it came from.
    pub fn source(&self, name: &str) -> Option<(String, String)> {
        for dir in &self.paths {
            let file = dir.join(format!("{name}.rhai"));
            if let Ok(text) = std::fs::read_to_string(&file) {
                return Some((text, file.display().to_string()));
            }
        }
        STDLIB
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| (text.to_string(), format!("stdlib/{name}.rhai")))
    }
}

/// Whether `name` is one Rhai gives a closure (`anon$…`): not for completion or docs.
pub fn is_closure_name(name: &str) -> bool {
    name.starts_with("anon$")
}

/// A closure built inside a module is a module function named `anon$…`, and Rhai
/// looks for it among the *caller's* functions when the script that imported the
/// module calls it ('Function not found: anon$…'). Putting those functions in the
/// global namespace lets the importing script find them, with the module's own
/// functions still in their reach.
#[allow(deprecated)] // update_fn_namespace: the only way to change an evaluated module's function
fn expose_closures(ast: &rhai::AST, module: &mut Module) {
    let closures: Vec<(String, usize)> = ast
        .iter_functions()
        .filter(|f| is_closure_name(f.name))
        .map(|f| (f.name.to_string(), f.params.len()))
        .collect();
    if closures.is_empty() {
        return;
    }
    for (name, params) in closures {
        if let Some(def) = module.get_script_fn(&name, params).cloned() {
            // The hash a script function is kept under (the same in every module).
            let hash = Module::new().set_script_fn(def);
            module.update_fn_namespace(hash, rhai::FnNamespace::Global);
        }
    }
    module.build_index();
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if path.is_empty()
            || path.contains(['/', '\\'])
            || path.contains("..")
            || path.ends_with(".rhai")
        {
            return Err(format!(
                "import \"{path}\": name a module (import \"balance\" as b), not a file; \
                 modules are found in the script's folder, REDIS_TRIB_PATH and the stdlib"
            )
            .into());
        }
        if let Some(m) = self.cache.lock().expect("resolver cache").get(path) {
            return Ok(m.clone());
        }
        let Some((text, origin)) = self.source(path) else {
            // A runtime error: Rhai replaces a resolver's ErrorModuleNotFound with its
            // own, which does not say where it looked.
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("Module not found: {path} ({})", self.looked_in(path)).into(),
                pos,
            )));
        };
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(origin.clone(), e.into(), pos)))?;
        ast.set_source(path);
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(origin, e, pos)))?;
        expose_closures(&ast, &mut module);
        let module: Shared<Module> = module.into();
        self.cache
            .lock()
            .expect("resolver cache")
            .insert(path.to_string(), module.clone());
        Ok(module)
    }
}
