//! What `crm_mon -1 --output-as=xml` says about the cluster, read from its XML: each node's
//! online/DC flags and the nodes a resource is started on. A small tag scanner for that one
//! well-formed, attribute-only document (no XML crate needed for it); not a general XML parser, and
//! not how the output is obtained (pcmk_node.rs).

use std::collections::HashMap;

/// One node as crm_mon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmNode {
    pub name: String,
    pub online: bool,
    pub is_dc: bool,
    pub pending: bool,
    pub unclean: bool,
}

/// The parts of crm_mon's report the benchmark uses.
#[derive(Debug, Clone, Default)]
pub struct CrmStatus {
    pub dc_present: bool,
    pub nodes: Vec<CrmNode>,
    /// Resource id → (role, the nodes it is reported running on).
    pub resources: HashMap<String, (String, Vec<String>)>,
}

impl CrmStatus {
    /// Reads crm_mon's XML; an error names what is missing.
    pub fn parse(xml: &str) -> Result<CrmStatus, String> {
        let mut status = CrmStatus::default();
        let mut in_nodes = false;
        let mut current_resource: Option<String> = None;
        let mut saw_summary = false;
        for tag in tags(xml) {
            match (tag.name.as_str(), tag.closing) {
                ("current_dc", false) => {
                    saw_summary = true;
                    status.dc_present = tag.attr("present") == Some("true");
                }
                ("nodes", false) => in_nodes = true,
                ("nodes", true) => in_nodes = false,
                ("node", false) if in_nodes => status.nodes.push(CrmNode {
                    name: tag.attr("name").unwrap_or_default().to_string(),
                    online: tag.attr("online") == Some("true"),
                    is_dc: tag.attr("is_dc") == Some("true"),
                    pending: tag.attr("pending") == Some("true"),
                    unclean: tag.attr("unclean") == Some("true"),
                }),
                ("resource", false) => {
                    let id = tag.attr("id").unwrap_or_default().to_string();
                    let role = tag.attr("role").unwrap_or_default().to_string();
                    status.resources.insert(id.clone(), (role, Vec::new()));
                    current_resource = (!tag.self_closing).then_some(id);
                }
                ("resource", true) => current_resource = None,
                ("node", false) => {
                    if let Some(id) = &current_resource {
                        let name = tag.attr("name").unwrap_or_default().to_string();
                        if let Some((_, on)) = status.resources.get_mut(id) {
                            on.push(name);
                        }
                    }
                }
                _ => {}
            }
        }
        if !saw_summary {
            return Err("crm_mon's XML has no <current_dc> (not a cluster status report)".into());
        }
        Ok(status)
    }

    /// The node crm_mon marks as the DC.
    pub fn dc(&self) -> Option<&str> {
        self.nodes.iter().find(|n| n.is_dc).map(|n| n.name.as_str())
    }

    /// The nodes `resource` is reported Started on (empty unless its role is Started).
    pub fn started_on(&self, resource: &str) -> Vec<&str> {
        match self.resources.get(resource) {
            Some((role, on)) if role == "Started" => on.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Every configured node online, none pending or unclean, and a DC elected.
    pub fn all_online(&self, count: usize) -> bool {
        self.dc_present
            && self.nodes.len() == count
            && self
                .nodes
                .iter()
                .all(|n| n.online && !n.pending && !n.unclean)
    }
}

/// One start or end tag with its attributes.
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The document's tags in order (declarations, comments and text skipped).
fn tags(xml: &str) -> impl Iterator<Item = Tag> + '_ {
    xml.split('<').skip(1).filter_map(|chunk| {
        let body = chunk.split_once('>')?.0;
        if body.starts_with('?') || body.starts_with('!') {
            return None;
        }
        let closing = body.starts_with('/');
        let self_closing = body.ends_with('/');
        let body = body.trim_start_matches('/').trim_end_matches('/');
        let (name, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        Some(Tag {
            name: name.to_string(),
            closing,
            self_closing,
            attrs: attributes(rest),
        })
    })
}

/// `key="value"` pairs (crm_mon quotes with double quotes and escapes the rest as entities).
fn attributes(mut rest: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some((value, tail)) = after.split_once('"') else {
            break;
        };
        attrs.push((key.trim().to_string(), unescape(value)));
        rest = tail;
    }
    attrs
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
