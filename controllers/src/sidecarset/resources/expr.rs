//! The expression language of `resourcesExpr` (kruise's `pkg/util/calculator`): numbers,
//! percentages (`50%` is 0.5), quantities (`40m`, `100Mi`), one variable (`cpu` or `memory`),
//! `+ - * /`, unary minus, parentheses and two-argument `max`/`min`.
//!
//! Evaluation mirrors the Go calculator step by step, including its quirks: a number token that
//! does not parse is 0, quantities and plain numbers mix through milli-units with truncation, and
//! when several steps fail the last failure is the one reported.

use std::cmp::Ordering;

use super::quantity::Quantity;

/// A value: a plain number or a quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A plain number (`2`, `0.5`, `50%`).
    Number(f64),
    /// A resource quantity.
    Quantity(Quantity),
}

/// The variable an expression reads, bound to the aggregated value of the target containers.
pub struct Variable<'a> {
    /// `cpu` or `memory`.
    pub name: &'a str,
    /// Its value.
    pub value: Quantity,
}

/// Evaluates `input`; the error text is the calculator's.
pub fn evaluate(input: &str, variable: &Variable<'_>) -> Result<Value, String> {
    let tokens = lex(input);
    let ast = Parser { tokens, pos: 0 }.parse()?;
    let mut last_error = None;
    match ast.eval(variable, &mut last_error) {
        Some(v) => check_not_negative(v),
        None => Err(last_error.unwrap_or_else(|| "no result from parser".to_string())),
    }
}

fn check_not_negative(v: Value) -> Result<Value, String> {
    match v {
        Value::Quantity(q) if q.is_negative() => {
            Err(format!("calculation result is negative: {q}"))
        }
        Value::Number(n) if n < 0.0 => Err(format!(
            "calculation result is negative: {}",
            go_format_g(n)
        )),
        v => Ok(v),
    }
}

/// Go's `int64(f)` on amd64: NaN and values out of range become `i64::MIN`.
pub fn go_int64(f: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_POW_63..TWO_POW_63).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Go's `%g` for a float64 (shortest digits; exponent form below 1e-4 or from 1e6 up).
pub fn go_format_g(f: f64) -> String {
    if !f.is_finite() {
        return match f {
            f if f.is_nan() => "NaN".into(),
            f if f > 0.0 => "+Inf".into(),
            _ => "-Inf".into(),
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Number(String),
    Quantity(String),
    Ident(String),
    Punct(u8),
    End,
}

/// A token and the lexer's line and column just after it (for syntax errors).
#[derive(Clone, Debug)]
struct Lexed {
    token: Token,
    line: usize,
    col: usize,
}

fn lex(input: &str) -> Vec<Lexed> {
    let bytes = input.as_bytes();
    let (mut pos, mut line, mut col) = (0, 1, 1);
    let mut out = Vec::new();
    let advance = |from: usize, to: usize, line: &mut usize, col: &mut usize| {
        for &b in &bytes[from..to] {
            if b == b'\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
        }
    };
    loop {
        let ws_end = pos
            + bytes[pos..]
                .iter()
                .take_while(|b| (**b as char).is_whitespace())
                .count();
        advance(pos, ws_end, &mut line, &mut col);
        pos = ws_end;
        let Some(&b) = bytes.get(pos) else {
            out.push(Lexed {
                token: Token::End,
                line,
                col,
            });
            return out;
        };
        let (token, end) = if b.is_ascii_digit() || b == b'.' {
            let end = pos + number_len(&bytes[pos..]);
            let text = input[pos..end].to_string();
            if is_quantity(&text) {
                (Token::Quantity(text), end)
            } else {
                (Token::Number(text), end)
            }
        } else if (b as char).is_ascii_alphabetic() {
            let len = bytes[pos..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            (Token::Ident(input[pos..pos + len].to_string()), pos + len)
        } else {
            (Token::Punct(b), pos + 1)
        };
        advance(pos, end, &mut line, &mut col);
        pos = end;
        out.push(Lexed { token, line, col });
    }
}

/// Length of a number token (`readNumber`): digits, one dot, one exponent with its sign, one
/// percent sign, then the letters of a unit.
fn number_len(bytes: &[u8]) -> usize {
    let (mut seen_dot, mut seen_e, mut seen_percent, mut expect_exp_digit) =
        (false, false, false, false);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => expect_exp_digit = false,
            b'.' if !(seen_dot || seen_e || seen_percent) => seen_dot = true,
            b'e' | b'E' if !(seen_e || seen_percent) => {
                seen_e = true;
                expect_exp_digit = true;
            }
            b'+' | b'-' if expect_exp_digit => expect_exp_digit = false,
            b'%' if !seen_percent => seen_percent = true,
            b if b.is_ascii_alphabetic() && !expect_exp_digit => {
                return i + bytes[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
            }
            _ => break,
        }
        i += 1;
    }
    i
}

/// Whether a number token ends in one of the units the calculator accepts.
fn is_quantity(s: &str) -> bool {
    let Some(num_end) = s.find(|c: char| !(c.is_ascii_digit() || ".eE+-".contains(c))) else {
        return false;
    };
    num_end > 0
        && ["m", "k", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "Pi"].contains(&&s[num_end..])
}

/// `strconv.ParseFloat` as the calculator uses it: a trailing `%` divides by 100, and a token
/// that does not parse counts as 0.
fn parse_number(s: &str) -> f64 {
    match s.strip_suffix('%') {
        Some(n) => n.parse::<f64>().map(|v| v / 100.0).unwrap_or(0.0),
        None => s.parse().unwrap_or(0.0),
    }
}

#[derive(Debug)]
enum Ast {
    Number(String),
    Quantity(String),
    Variable(String),
    Neg(Box<Ast>),
    Binary(u8, Box<Ast>, Box<Ast>),
    Call(String, Vec<Ast>),
}

struct Parser {
    tokens: Vec<Lexed>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos].token
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].token.clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn syntax_error(&self) -> String {
        let at = &self.tokens[self.pos];
        format!(
            "parse error: syntax error at line {}, col {}",
            at.line, at.col
        )
    }

    fn expect(&mut self, punct: u8) -> Result<(), String> {
        if *self.peek() == Token::Punct(punct) {
            self.bump();
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn parse(mut self) -> Result<Ast, String> {
        let ast = self.expr()?;
        match self.peek() {
            Token::End => Ok(ast),
            _ => Err(self.syntax_error()),
        }
    }

    fn expr(&mut self) -> Result<Ast, String> {
        let mut left = self.term()?;
        while let Token::Punct(op @ (b'+' | b'-')) = *self.peek() {
            self.bump();
            left = Ast::Binary(op, Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Ast, String> {
        let mut left = self.factor()?;
        while let Token::Punct(op @ (b'*' | b'/')) = *self.peek() {
            self.bump();
            left = Ast::Binary(op, Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Ast, String> {
        match self.peek().clone() {
            Token::Number(n) => {
                self.bump();
                Ok(Ast::Number(n))
            }
            Token::Quantity(q) => {
                self.bump();
                Ok(Ast::Quantity(q))
            }
            Token::Ident(name) => {
                self.bump();
                if *self.peek() == Token::Punct(b'(') {
                    self.bump();
                    self.call(name)
                } else {
                    Ok(Ast::Variable(name))
                }
            }
            Token::Punct(b'(') => {
                self.bump();
                let inner = self.expr()?;
                self.expect(b')')?;
                Ok(inner)
            }
            Token::Punct(b'-') => {
                self.bump();
                Ok(Ast::Neg(Box::new(self.factor()?)))
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// `name(expr)` or `name(expr, expr)`, after the `(`.
    fn call(&mut self, name: String) -> Result<Ast, String> {
        let mut args = vec![self.expr()?];
        if *self.peek() == Token::Punct(b',') {
            self.bump();
            args.push(self.expr()?);
        }
        self.expect(b')')?;
        Ok(Ast::Call(name, args))
    }
}

impl Ast {
    /// The value, or `None` after recording why in `last_error` (a step given a failed operand
    /// fails without a new message, as in Go).
    fn eval(&self, var: &Variable<'_>, last_error: &mut Option<String>) -> Option<Value> {
        let step = match self {
            Ast::Number(n) => Ok(Some(Value::Number(parse_number(n)))),
            Ast::Quantity(q) => Quantity::parse(q).map(|q| Some(Value::Quantity(q))),
            Ast::Variable(name) => {
                let name = name.to_lowercase();
                if name == var.name {
                    Ok(Some(Value::Quantity(var.value)))
                } else {
                    Err(format!("undefined variable: {name}"))
                }
            }
            Ast::Neg(inner) => Ok(inner.eval(var, last_error).map(negate)),
            Ast::Binary(op, l, r) => {
                let l = l.eval(var, last_error);
                let r = r.eval(var, last_error);
                match (l, r) {
                    (Some(l), Some(r)) => binary(*op, l, r),
                    _ => Ok(None),
                }
            }
            Ast::Call(name, args) => {
                let values: Vec<Option<Value>> =
                    args.iter().map(|a| a.eval(var, last_error)).collect();
                call(name, &values)
            }
        };
        step.unwrap_or_else(|message| {
            *last_error = Some(message);
            None
        })
    }
}

fn negate(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::Number(-n),
        Value::Quantity(mut q) => {
            q.neg();
            Value::Quantity(q)
        }
    }
}

/// A number as a quantity (`NewMilliQuantity(int64(n*1000), DecimalSI)`).
fn number_as_quantity(n: f64) -> Quantity {
    Quantity::from_milli(go_int64(n * 1000.0))
}

fn as_quantity(v: Value) -> Quantity {
    match v {
        Value::Quantity(q) => q,
        Value::Number(n) => number_as_quantity(n),
    }
}

fn scale(q: Quantity, by: f64, divide: bool) -> Value {
    let milli = q.milli_value() as f64;
    let mut out = q;
    out.set_milli(go_int64(if divide { milli / by } else { milli * by }));
    Value::Quantity(out)
}

/// `+ - * /`: `Ok(Some)` a value, `Err` a failure to record.
fn binary(op: u8, l: Value, r: Value) -> Result<Option<Value>, String> {
    use Value::{Number, Quantity as Q};
    let value = match (op, l, r) {
        (b'+', Number(a), Number(b)) => Number(a + b),
        (b'-', Number(a), Number(b)) => Number(a - b),
        (b'+' | b'-', l, r) => {
            let mut sum = as_quantity(l);
            let mut right = as_quantity(r);
            if op == b'-' {
                right.neg();
            }
            sum.add(&right);
            Q(sum)
        }
        (b'*', Q(_), Q(_)) => return Err("multiplication of two quantities".into()),
        (b'*', Q(q), Number(n)) | (b'*', Number(n), Q(q)) => scale(q, n, false),
        (b'*', Number(a), Number(b)) => Number(a * b),
        (b'/', _, Q(_)) => return Err("division by quantity".into()),
        (b'/', _, Number(0.0)) => return Err("division by zero".into()),
        (b'/', Q(q), Number(n)) => scale(q, n, true),
        (b'/', Number(a), Number(b)) => Number(a / b),
        _ => return Err(format!("unknown operator {}", op as char)),
    };
    Ok(Some(value))
}

/// `max`/`min`: `Ok(None)` when an argument already failed.
fn call(name: &str, args: &[Option<Value>]) -> Result<Option<Value>, String> {
    let pick = match name.to_lowercase().as_str() {
        "max" => Ordering::Greater,
        "min" => Ordering::Less,
        _ => return Err(format!("unknown function: {name}")),
    };
    let [left, right] = args else {
        return Err(format!(
            "{} function requires exactly 2 arguments, got {}",
            name.to_lowercase(),
            args.len()
        ));
    };
    let (Some(left), Some(right)) = (*left, *right) else {
        return Ok(None);
    };
    Ok(Some(extreme(pick, left, right)))
}

/// The larger (`Greater`) or smaller (`Less`) of two values; ties go to the left one. A number
/// meeting a quantity becomes a quantity first.
fn extreme(pick: Ordering, left: Value, right: Value) -> Value {
    if let (Value::Number(a), Value::Number(b)) = (left, right) {
        let left_wins = if pick == Ordering::Greater {
            a >= b
        } else {
            a <= b
        };
        return Value::Number(if left_wins { a } else { b });
    }
    let (l, r) = (as_quantity(left), as_quantity(right));
    let ord = l.cmp_value(&r);
    let left_wins = ord == pick || ord == Ordering::Equal;
    Value::Quantity(if left_wins { l } else { r })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn eval(expr: &str, name: &str, value: &str) -> Result<String, String> {
        let var = Variable {
            name,
            value: q(value),
        };
        evaluate(expr, &var).map(|v| match v {
            Value::Number(n) => format!("#{}", go_format_g(n)),
            Value::Quantity(q) => q.to_string(),
        })
    }

    #[test]
    fn evaluates_like_kruise_calculator() {
        for (expr, name, value, want) in [
            ("2 + 3 * 4", "cpu", "0", "#14"),
            ("(2 + 3) * 4", "cpu", "0", "#20"),
            ("50% * 200", "cpu", "0", "#100"),
            ("max(10, 20)", "cpu", "0", "#20"),
            ("min(10, 20)", "cpu", "0", "#10"),
            ("100m + 50m", "cpu", "0", "150m"),
            ("100m - 50m", "cpu", "0", "50m"),
            ("40m * 2", "cpu", "0", "80m"),
            ("2 * 40m", "cpu", "0", "80m"),
            ("100m / 2", "cpu", "0", "50m"),
            ("max(40m, 20)", "cpu", "0", "20"),
            ("max(cpu*50%, 50m)", "cpu", "200m", "100m"),
            ("max(cpu*50%, 50m)", "cpu", "60m", "50m"),
            ("max(memory*50%, 100Mi)", "memory", "512Mi", "256Mi"),
            ("MAX(CPU, 1)", "cpu", "2", "2"),
            ("cpu + 1", "cpu", "500m", "1500m"),
            ("-2 * -3", "cpu", "0", "#6"),
            ("2 - -3", "cpu", "0", "#5"),
            ("10 - 2 - 3", "cpu", "0", "#5"),
            ("12 / 2 / 3", "cpu", "0", "#2"),
            ("10x", "cpu", "0", "#0"),
            ("1.5e3", "cpu", "0", "#1500"),
            ("cpu / 3", "cpu", "1", "333m"),
            ("cpu * 0.333", "cpu", "1", "333m"),
            ("1Gi + 1", "memory", "0", "1073741825"),
            ("max(cpu, cpu)", "cpu", "1", "1"),
        ] {
            assert_eq!(eval(expr, name, value), Ok(want.to_string()), "{expr}");
        }
    }

    #[test]
    fn errors_are_the_calculators() {
        for (expr, name, want) in [
            ("10 / 0", "cpu", "division by zero"),
            ("cpu / 0", "cpu", "division by zero"),
            ("40m * 2m", "cpu", "multiplication of two quantities"),
            ("1 / 2m", "cpu", "division by quantity"),
            ("1 - 2", "cpu", "calculation result is negative: -1"),
            ("50m - 100m", "cpu", "calculation result is negative: -50m"),
            ("foo(1, 2)", "cpu", "unknown function: foo"),
            (
                "max(1)",
                "cpu",
                "max function requires exactly 2 arguments, got 1",
            ),
            ("memory", "cpu", "undefined variable: memory"),
            ("Memory * 2", "cpu", "undefined variable: memory"),
            // The last failing step is the one reported.
            ("nope + 1 / 0", "cpu", "division by zero"),
            ("nope / 0", "cpu", "undefined variable: nope"),
            ("1e3m", "cpu", super::super::quantity::ERR_FORMAT_WRONG),
            ("", "cpu", "parse error: syntax error at line 1, col 1"),
            ("1 +", "cpu", "parse error: syntax error at line 1, col 4"),
            (
                "max(1, 2, 3)",
                "cpu",
                "parse error: syntax error at line 1, col 10",
            ),
            ("(1", "cpu", "parse error: syntax error at line 1, col 3"),
            ("1 2", "cpu", "parse error: syntax error at line 1, col 4"),
            ("1 # 2", "cpu", "parse error: syntax error at line 1, col 4"),
        ] {
            assert_eq!(eval(expr, name, "1"), Err(want.to_string()), "{expr:?}");
        }
    }

    #[test]
    fn go_number_formatting() {
        assert_eq!(go_format_g(-1.0), "-1");
        assert_eq!(go_format_g(-0.5), "-0.5");
        assert_eq!(go_format_g(-1e21), "-1e+21");
        assert_eq!(go_format_g(-1.5e-5), "-1.5e-05");
        assert_eq!(go_format_g(-123456.0), "-123456");
        assert_eq!(go_format_g(-1234567.0), "-1.234567e+06");
        assert_eq!(go_int64(f64::INFINITY), i64::MIN);
        assert_eq!(go_int64(-2.7), -2);
    }
}
