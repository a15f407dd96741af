//! Reading a templates folder: every file compiled, every variable
//! declared, every part rendered with the template's example data, and every
//! problem reported as `file:line:col`, so a broken template fails
//! `crossgate check` and a start or reload, never a send.

use super::{BUILTINS, Extras, PARTS, Template, Templates, WhatsappMapping};
use crate::locale;
use crate::message::Channel;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// `template.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    #[allow(dead_code)]
    #[serde(default)]
    description: Option<String>,
    category: String,
    default_locale: String,
    #[serde(default)]
    variables: Vec<String>,
    #[serde(default)]
    optional: Vec<String>,
    #[serde(default)]
    example: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    whatsapp: Option<WhatsappMeta>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhatsappMeta {
    name: String,
    #[serde(default)]
    parameters: Vec<String>,
    #[serde(default)]
    languages: BTreeMap<String, String>,
}

/// Every template under `dir`, checked against the configured `categories`.
pub fn load(dir: &Path, categories: &BTreeSet<String>) -> Result<Templates, Vec<TemplateError>> {
    let mut loader = Loader {
        env: Environment::new(),
        sources: BTreeMap::new(),
        errors: Vec::new(),
    };
    loader.env.set_undefined_behavior(UndefinedBehavior::Strict);
    loader.env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let mut templates = BTreeMap::new();
    for folder in sorted_entries(dir, &mut loader.errors) {
        if !folder.is_dir() {
            continue;
        }
        if let Some(template) = loader.template(&folder, categories) {
            templates.insert(template.name.clone(), template);
        }
    }
    let templates = Templates {
        templates,
        env: loader.env,
    };
    if loader.errors.is_empty() {
        for template in templates.iter() {
            render_examples(
                &templates,
                template,
                dir,
                &loader.sources,
                &mut loader.errors,
            );
        }
    }
    if loader.errors.is_empty() {
        Ok(templates)
    } else {
        Err(loader.errors)
    }
}

struct Loader {
    env: Environment<'static>,
    /// Compiled name to the file and its text, to place later errors.
    sources: BTreeMap<String, (PathBuf, String)>,
    errors: Vec<TemplateError>,
}

impl Loader {
    fn template(&mut self, folder: &Path, categories: &BTreeSet<String>) -> Option<Template> {
        let name = folder.file_name()?.to_string_lossy().into_owned();
        let meta_path = folder.join("template.toml");
        if !valid_name(&name) {
            self.error(
                folder,
                None,
                "a template's folder name is 1-64 of a-z, 0-9, _ and -",
            );
            return None;
        }
        let text = match std::fs::read_to_string(&meta_path) {
            Ok(text) => text,
            Err(e) => {
                self.error(&meta_path, None, format!("cannot read: {e}"));
                return None;
            }
        };
        let meta: Meta = match toml::from_str(&text) {
            Ok(meta) => meta,
            Err(e) => {
                let at = e.span().map(|s| line_col(&text, s.start));
                self.error(&meta_path, at, e.message().trim_end());
                return None;
            }
        };
        let place = |key: &str| find_key(&text, key);
        if !categories.contains(&meta.category) {
            self.error(
                &meta_path,
                place("category"),
                format!(
                    "category {:?} is not configured in [categories]",
                    meta.category
                ),
            );
        }
        let default_locale = locale::normalise(&meta.default_locale);
        let declared: BTreeSet<&str> = meta
            .variables
            .iter()
            .chain(&meta.optional)
            .map(String::as_str)
            .chain(BUILTINS)
            .collect();
        for variable in &meta.variables {
            if !meta.example.contains_key(variable) {
                self.error(
                    &meta_path,
                    place("example").or(place("variables")),
                    format!(
                        "[example] has no {variable:?}: every required variable needs example data"
                    ),
                );
            }
        }

        let mut locales = BTreeMap::new();
        let mut links_preferences = false;
        for locale_dir in sorted_entries(folder, &mut self.errors) {
            if !locale_dir.is_dir() {
                let file = locale_dir.file_name().unwrap_or_default();
                if file != "template.toml" {
                    self.error(&locale_dir, None, "unknown file: a template folder holds template.toml and one folder per locale");
                }
                continue;
            }
            let tag = locale_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !locale::valid(&tag) || locale::normalise(&tag) != tag {
                self.error(
                    &locale_dir,
                    None,
                    format!("{tag:?} is not a locale tag like en, nl or nl-BE"),
                );
                continue;
            }
            let mut parts = BTreeSet::new();
            for file in sorted_entries(&locale_dir, &mut self.errors) {
                let file_name = file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let Some(part) = PARTS.iter().find(|p| **p == file_name) else {
                    self.error(
                        &file,
                        None,
                        format!("unknown file, expected one of {}", PARTS.join(", ")),
                    );
                    continue;
                };
                let source = match std::fs::read_to_string(&file) {
                    Ok(source) => source,
                    Err(e) => {
                        self.error(&file, None, format!("cannot read: {e}"));
                        continue;
                    }
                };
                let key = format!("{name}/{tag}/{part}");
                if self.compile(key.clone(), &file, source, &declared) {
                    parts.insert(*part);
                    links_preferences |= self
                        .env
                        .get_template(&key)
                        .is_ok_and(|t| t.undeclared_variables(false).contains("preferences_url"));
                }
            }
            locales.insert(tag, parts);
        }
        if !locales.contains_key(&default_locale) {
            self.error(
                &meta_path,
                place("default_locale"),
                format!(
                    "default_locale {default_locale:?} has no folder {}",
                    folder.join(&default_locale).display()
                ),
            );
        }
        let whatsapp = meta.whatsapp.map(|w| {
            for (i, parameter) in w.parameters.iter().enumerate() {
                self.compile(
                    format!("{name}/whatsapp.parameters[{i}]"),
                    &meta_path,
                    parameter.clone(),
                    &declared,
                );
            }
            WhatsappMapping {
                name: w.name,
                parameters: w.parameters.len(),
                languages: w
                    .languages
                    .into_iter()
                    .map(|(locale, code)| (locale::normalise(&locale), code))
                    .collect(),
            }
        });
        Some(Template {
            name,
            category: meta.category,
            default_locale,
            variables: meta.variables,
            optional: meta.optional,
            example: meta.example,
            locales,
            whatsapp,
            links_preferences,
        })
    }

    /// Compile one file; report syntax errors and variables nobody declared.
    fn compile(
        &mut self,
        key: String,
        file: &Path,
        source: String,
        declared: &BTreeSet<&str>,
    ) -> bool {
        if let Err(e) = self.env.add_template_owned(key.clone(), source.clone()) {
            let at = place_of(&e, &source);
            self.error(file, at, detail(&e));
            return false;
        }
        let undeclared = self
            .env
            .get_template(&key)
            .map(|t| t.undeclared_variables(false))
            .unwrap_or_default();
        let mut undeclared: Vec<_> = undeclared
            .into_iter()
            .filter(|v| !declared.contains(v.as_str()) && self.env.globals().all(|(g, _)| g != v))
            .collect();
        undeclared.sort();
        for variable in &undeclared {
            self.error(
                file,
                find(&source, variable),
                format!(
                    "{variable:?} is not declared: add it to variables or optional in template.toml"
                ),
            );
        }
        self.sources.insert(key, (file.to_path_buf(), source));
        undeclared.is_empty()
    }

    fn error(&mut self, file: &Path, at: Option<(usize, usize)>, message: impl Into<String>) {
        self.errors.push(TemplateError {
            file: file.to_path_buf(),
            at,
            message: message.into(),
        });
    }
}

/// Render every channel of every locale with the example data (and a
/// stand-in unsubscribe link), as a send would.
fn render_examples(
    templates: &Templates,
    template: &Template,
    dir: &Path,
    sources: &BTreeMap<String, (PathBuf, String)>,
    errors: &mut Vec<TemplateError>,
) {
    let extras = Extras {
        customer_id: Some("example-customer".into()),
        unsubscribe_url: Some("https://gateway.example/u/example-token".into()),
        preferences_url: Some("https://gateway.example/p/example-token".into()),
    };
    for locale in template.locales.keys() {
        for channel in Channel::ALL {
            if !template.has(channel, locale) {
                continue;
            }
            let chain = [locale.clone()];
            if let Err(e) =
                templates.render(&template.name, channel, &chain, &template.example, &extras)
            {
                let (file, at) = match &e {
                    super::RenderError::Failed { file, .. } => {
                        let key = file.rsplit_once(':').map_or(file.as_str(), |(k, _)| k);
                        match sources.get(key) {
                            Some((path, source)) => {
                                let line = file.rsplit_once(':').and_then(|(_, l)| l.parse().ok());
                                (path.clone(), line.map(|l| (l, first_column(source, l))))
                            }
                            None => (dir.join(&template.name), None),
                        }
                    }
                    _ => (dir.join(&template.name).join("template.toml"), None),
                };
                errors.push(TemplateError {
                    file,
                    at,
                    message: format!("rendering the example data for {channel} in {locale}: {e}"),
                });
            }
        }
    }
}

fn sorted_entries(dir: &Path, errors: &mut Vec<TemplateError>) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            paths
        }
        Err(e) => {
            errors.push(TemplateError {
                file: dir.to_path_buf(),
                at: None,
                message: format!("cannot read the folder: {e}"),
            });
            Vec::new()
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Where a minijinja error points in `source`.
fn place_of(e: &minijinja::Error, source: &str) -> Option<(usize, usize)> {
    match (e.range(), e.line()) {
        (Some(range), _) => Some(line_col(source, range.start)),
        (None, Some(line)) => Some((line, first_column(source, line))),
        _ => None,
    }
}

fn detail(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The first non-blank column of a 1-based line.
fn first_column(source: &str, line: usize) -> usize {
    source
        .lines()
        .nth(line.saturating_sub(1))
        .map_or(1, |l| l.len() - l.trim_start().len() + 1)
}

/// Where `word` first appears in `source`, for errors about a name.
fn find(source: &str, word: &str) -> Option<(usize, usize)> {
    source.find(word).map(|offset| line_col(source, offset))
}

/// Where the TOML line that sets `key` (or opens `[key]`) starts.
fn find_key(source: &str, key: &str) -> Option<(usize, usize)> {
    source.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start();
        let rest = trimmed
            .strip_prefix(key)
            .or_else(|| trimmed.strip_prefix('[')?.strip_prefix(key))?;
        rest.trim_start()
            .starts_with(['=', ']'])
            .then(|| (i + 1, line.len() - trimmed.len() + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::load;
    use crate::message::Channel;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    fn categories() -> BTreeSet<String> {
        ["transactional", "marketing"].map(String::from).into()
    }

    const META: &str = "category = \"transactional\"\ndefault_locale = \"en\"\nvariables = [\"name\"]\n[example]\nname = \"Ada\"\n";

    #[test]
    fn errors_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("welcome/template.toml", META),
                (
                    "welcome/en/sms.txt",
                    "Hi {{ name }},\nyour code is {{ code }",
                ),
                ("welcome/en/push.body", "Hi {{ nmae }}"),
                ("welcome/en/sms.text", "typo in the file name"),
            ],
        );
        let errors = load(dir.path(), &categories()).err().expect("errors");
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let root = dir.path().display();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{root}/welcome/en/sms.txt:2:"))
                    && l.contains("syntax error")),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&format!(
                "{root}/welcome/en/push.body:1:7: \"nmae\" is not declared: add it to variables or optional in template.toml"
            )),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("sms.text: unknown file")),
            "{lines:#?}"
        );
    }

    #[test]
    fn example_data_is_rendered_at_load() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("offer/template.toml", META),
                // A filter that fails on the example's string.
                ("offer/en/sms.txt", "Hi {{ name }}\n{{ name | int + 1 }}"),
            ],
        );
        let errors = load(dir.path(), &categories()).err().expect("errors");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .to_string()
                .contains("/offer/en/sms.txt:2:1: rendering the example data for sms in en"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn html_is_escaped_in_email_html_only_and_text_comes_from_it() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("t/template.toml", META),
                ("t/en/email.subject", "For\n  {{ name }}"),
                ("t/en/email.html", "<p>Hello <b>{{ name }}</b></p>"),
                ("t/en/sms.txt", "Hello {{ name }}"),
                ("t/nl/sms.txt", "Hallo {{ name }}"),
            ],
        );
        let templates = load(dir.path(), &categories()).unwrap();
        let data = serde_json::json!({"name": "<Ada & Bob>"});
        let data = data.as_object().unwrap();
        let chain = crate::locale::chain(Some("nl-BE"), "en");
        let email = templates
            .render("t", Channel::Email, &chain, data, &Default::default())
            .unwrap();
        assert_eq!(email.locale, "en", "nl has no email: the default's");
        assert_eq!(email.content.subject.as_deref(), Some("For <Ada & Bob>"));
        assert_eq!(
            email.content.html.as_deref(),
            Some("<p>Hello <b>&lt;Ada &amp; Bob&gt;</b></p>")
        );
        assert_eq!(email.content.text, "Hello <Ada & Bob>");
        let sms = templates
            .render("t", Channel::Sms, &chain, data, &Default::default())
            .unwrap();
        assert_eq!(
            (sms.locale.as_str(), sms.content.text.as_str()),
            ("nl", "Hallo <Ada & Bob>")
        );
        let missing = templates
            .render(
                "t",
                Channel::Sms,
                &chain,
                &Default::default(),
                &Default::default(),
            )
            .unwrap_err();
        assert_eq!(missing.to_string(), "template \"t\" needs data.name");
    }
}
