//! One console table type for every command's table: columns with a header, an
//! alignment and a width (fixed, or fitted to the widest cell), a separator before each
//! column and an indent before each line.

/// How a column's cells are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Padded on the right.
    Left,
    /// Padded on the left.
    Right,
}

/// A column: header, alignment, width and what separates it from the column before.
#[derive(Debug, Clone)]
pub struct Column {
    header: String,
    align: Align,
    width: usize,
    fit: bool,
    separator: &'static str,
}

impl Column {
    /// A column at least `width` characters wide (wider cells are not cut).
    pub fn new(header: &str, align: Align, width: usize) -> Column {
        Column {
            header: header.to_string(),
            align,
            width,
            fit: false,
            separator: " ",
        }
    }

    /// A left-aligned column as wide as its widest cell or header.
    pub fn fit(header: &str) -> Column {
        Column {
            fit: true,
            ..Column::new(header, Align::Left, 0)
        }
    }

    /// What goes before this column (default one space; ignored for the first).
    pub fn after(mut self, separator: &'static str) -> Column {
        self.separator = separator;
        self
    }
}

/// Rows of cells under column headers.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
    indent: &'static str,
    trim: bool,
}

impl Table {
    /// A table with these columns and no rows.
    pub fn new(columns: Vec<Column>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
            indent: "",
            trim: false,
        }
    }

    /// Every line starts with `indent` and loses its trailing spaces.
    pub fn indented(mut self, indent: &'static str) -> Table {
        self.indent = indent;
        self.trim = true;
        self
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The header line and one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if !c.fit {
                    return c.width;
                }
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|cell| cell.chars().count())
                    .fold(c.header.chars().count(), usize::max)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|c| c.header.clone()).collect();
        let mut out = String::new();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::from(self.indent);
            for (i, (c, cell)) in self.columns.iter().zip(cells).enumerate() {
                if i > 0 {
                    line.push_str(c.separator);
                }
                let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
                match c.align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            if self.trim {
                line.truncate(line.trim_end().len());
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_fitted_columns() {
        let mut t = Table::new(vec![
            Column::new("a", Align::Left, 3),
            Column::new("b", Align::Right, 4),
            Column::new("c", Align::Left, 0).after("  "),
        ]);
        t.row(vec!["x".into(), "12".into(), "end".into()]);
        assert_eq!(t.render(), "a      b  c\nx     12  end\n");
        let mut t =
            Table::new(vec![Column::fit("h"), Column::fit("µs").after("  ")]).indented("  ");
        t.row(vec!["long".into(), "1".into()]);
        assert_eq!(t.render(), "  h     µs\n  long  1\n");
    }
}
