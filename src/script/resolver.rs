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
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                path.to_string(),
                pos,
            )));
        };
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(origin.clone(), e.into(), pos)))?;
        ast.set_source(path);
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(origin, e, pos)))?;
        let module: Shared<Module> = module.into();
        self.cache
            .lock()
            .expect("resolver cache")
            .insert(path.to_string(), module.clone());
        Ok(module)
    }
}
